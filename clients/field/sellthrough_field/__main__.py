from sellthrough_field.cli import app

app()
