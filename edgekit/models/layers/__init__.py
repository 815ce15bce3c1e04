"""Reusable building blocks of the papers' modified networks (one small file per block family)."""
