"""Service handlers: `async def handler(runtime, call) -> Result`, one module per family."""
