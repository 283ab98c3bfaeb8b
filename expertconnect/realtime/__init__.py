"""Real-time delivery: the socket registry (hub), the WebSocket handlers, the event frames."""
