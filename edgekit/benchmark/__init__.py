"""`edgekit bench`: the run (run), one model per worker process (worker), boards over SSH (remote),
the terminal table and CSV (table), Markdown (markdown) and plots (plot)."""
