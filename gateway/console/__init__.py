"""The operator's console: a small static app (in `static/`, shipped in the
package, no build step and no CDN) served on the admin API's origin, signed in
with an admin key (`session.py`, `access.py`), calling the admin API."""
