"""The deal screens' views, HTTP only: parse the request, call one selector or service,
render a page or a named partial of it. ``list`` (the deal list), ``detail`` (the deal page and
its refresh), ``fields`` (inline field edits) and ``states`` (stage, won, lost, reopen).
What they share lives in ``dealdesk.deals.pages``; upstream failures become words and a status
through ``dealdesk.deals.errors`` (the table in ``problems.py``), never a 500.
"""
