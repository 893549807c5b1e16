"""Code the tests share: generated catalogs, subprocess runners."""
