"""The artifact: its manifest.json records (manifest, plan_records) and the folder on disk (folder)."""
