"""The int8 planner: candidate quantization plans per target, measured on held-out images, the best
one within an accuracy budget shipped (``edgekit build --max-drop``). See planner.py."""
