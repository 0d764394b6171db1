from wadesk.cli import app

app()
