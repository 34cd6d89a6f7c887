"""Stage 5, pruning: masks, the criteria that choose them, structured (filter) pruning, the
schedules that prune and fine-tune, and the report of what is left."""
