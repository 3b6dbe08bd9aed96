"""The SMS channel: keywords, categories, short dialogues."""
