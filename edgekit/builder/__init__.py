"""`edgekit build`: the pipeline (pipeline) and its steps: source, export, simplify, verify, the report."""
