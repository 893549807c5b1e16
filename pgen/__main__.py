from pgen.cli.main import run

run()
