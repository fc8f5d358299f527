"""One module per page, each `render(ctx)`; the logic they call lives in app/*.py."""
