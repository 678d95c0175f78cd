"""Tools the agent loop can run: file_search, function (client-side) and MCP."""
