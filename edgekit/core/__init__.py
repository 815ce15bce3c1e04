"""What every room uses: errors, progress lines, argument checks, hashing, library versions, safe outputs."""
