"""Pipeline stages. Each is a function from an artifact (a file or folder) to a new artifact."""
