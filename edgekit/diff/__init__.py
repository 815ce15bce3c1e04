"""`edgekit diff`: where an int8 model departs from its fp32 original (run), per output, layer, cost, range."""
