"""The main job: train a tiny reasoner and measure DiVeRSe and AMA on it (see config.py)."""
