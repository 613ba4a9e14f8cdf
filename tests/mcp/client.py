"""Drives Footnote's MCP server with the official Python MCP SDK, for tests/mcp.rs.

    python client.py stdio COMMAND [ARG...]     # spawns the server (environment inherited)
    python client.py http URL [TOKEN]           # Streamable HTTP, with a bearer token if given

Reads the calls to make from stdin, a JSON list of {"tool": NAME, "arguments": {...}}; connects,
initializes, lists the tools, makes each call in order (asking for progress notifications), and
prints one JSON object on stdout:

    {"server": {"name", "version"}, "instructions": str,
     "tools": [{"name", "description", "inputSchema"}],
     "calls": [{"tool", "isError", "text", "structured", "progress": [messages], "error": str|null}]}

A call the server answers with a protocol error (not a tool result) has "error" set.
"""

import json
import os
import sys

import anyio
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from mcp.shared.exceptions import MCPError


async def drive(session, calls):
    init = await session.initialize()
    listed = await session.list_tools()
    out = {
        "server": {"name": init.server_info.name, "version": init.server_info.version},
        "instructions": init.instructions,
        "tools": [
            {"name": t.name, "description": t.description, "inputSchema": t.input_schema}
            for t in listed.tools
        ],
        "calls": [],
    }
    for call in calls:
        progress = []

        async def on_progress(value, total, message):
            progress.append(message)

        entry = {"tool": call["tool"], "progress": progress, "error": None}
        try:
            result = await session.call_tool(call["tool"], call.get("arguments"), progress_callback=on_progress)
            entry["isError"] = bool(result.is_error)
            entry["text"] = "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")
            entry["structured"] = result.structured_content
        except MCPError as e:
            entry["error"] = str(e)
        out["calls"].append(entry)
    return out


async def main():
    calls = json.load(sys.stdin)
    mode = sys.argv[1]
    if mode == "stdio":
        params = StdioServerParameters(command=sys.argv[2], args=sys.argv[3:], env=dict(os.environ))
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                out = await drive(session, calls)
    elif mode == "http":
        headers = {"Authorization": f"Bearer {sys.argv[3]}"} if len(sys.argv) > 3 else {}
        async with create_mcp_http_client(headers=headers) as http:
            async with streamable_http_client(sys.argv[2], http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    out = await drive(session, calls)
    else:
        sys.exit(f"unknown mode {mode!r}: stdio or http")
    json.dump(out, sys.stdout, default=str)
    sys.stdout.write("\n")


anyio.run(main)
