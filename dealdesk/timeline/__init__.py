"""A deal's timeline: its activities (notes, tasks, calls, meetings) from the synced store,
interleaved with DealDesk's own audit entries; adding notes and tasks, and marking tasks done."""
