r"""A screenshot of the review page on a trained run, for the README: serves
`python -m pgen review` on a scratch copy of the ratings database, rates a few samples with
the keyboard in headless Chromium (Debian's chromium and chromium-driver) and saves the page.

    python bench/review_screenshot.py --workdir runs/fmnist --out bench/samples/review_page.png
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--out", default="bench/samples/review_page.png")
  parser.add_argument("--ratings", default="kkrkkr", help="Keys pressed before the shot.")
  args = parser.parse_args()
  port = free_port()
  with tempfile.TemporaryDirectory() as scratch:
    server = subprocess.Popen(
        [sys.executable, "-m", "pgen", "review", "--workdir", args.workdir, "--port", str(port),
         "--reviewer", "anna", "--db", os.path.join(scratch, "reviews.sqlite")], cwd=ROOT)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--window-size=900,860"):
      options.add_argument(argument)
    browser = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
      deadline = time.time() + 120
      while True:
        try:
          socket.create_connection(("127.0.0.1", port), timeout=1).close()
          break
        except OSError:
          if time.time() > deadline or server.poll() is not None:
            raise SystemExit("the review server did not start") from None
          time.sleep(0.5)
      browser.get(f"http://127.0.0.1:{port}/")
      page = browser.find_element(By.TAG_NAME, "body")
      for count, key in enumerate(args.ratings, 1):
        WebDriverWait(browser, 30).until(
            lambda b, n=count - 1: f"{n} rated by you" in b.find_element(By.ID, "progress").text)
        page.send_keys(key)
      WebDriverWait(browser, 30).until(
          lambda b: f"{len(args.ratings)} rated by you" in b.find_element(By.ID, "progress").text)
      time.sleep(1)  # The next sample's image loads.
      browser.save_screenshot(args.out)
      print(f"Wrote {args.out}.")
    finally:
      browser.quit()
      server.terminate()
      server.wait()


if __name__ == "__main__":
  main()
