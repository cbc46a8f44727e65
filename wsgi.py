import eventlet

eventlet.monkey_patch()  # before anything imports socket or threading (see DESIGN.md)

from dashboard import create_app  # noqa: E402

app = create_app(async_mode="eventlet")
