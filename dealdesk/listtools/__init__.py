"""Tools over the deal list: bulk actions, saved views and previous/next navigation."""
