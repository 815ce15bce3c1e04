"""Target profiles (the *.toml files here, read by profiles) and the x86 ISA levels (isa)."""
