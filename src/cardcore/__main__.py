from cardcore.cli import app

app(prog_name="cardcore")
