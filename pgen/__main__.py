from pgen.main import run

run()
