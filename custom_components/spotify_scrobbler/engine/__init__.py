"""The scrobbling engine: Spotify's Web API, the cycle, MongoDB, the history import.

Plain asyncio, pymongo and aiohttp; no Home Assistant import (a test checks it), so the
benchmark and the engine tests run it without Home Assistant. The package above is the
glue that gives it a config entry, entities, actions and storage.
"""
