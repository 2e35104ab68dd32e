"""Tests of the Spotify Scrobbler integration."""
