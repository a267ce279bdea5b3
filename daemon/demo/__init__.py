"""``calpool demo``: the embedded default, a whole site on loopback.

- :mod:`daemon.demo.radicale` starts a Radicale CalDAV server as a child
  process, storing in the demo's temporary folder;
- :mod:`daemon.demo.sample` holds the sample people, rooms, event types and
  their busy events (placed relative to now), and the config text;
- :mod:`daemon.demo.session` puts them together: seed, configure, migrate,
  sync once, run the daemon, print the banner, clean up on Ctrl-C.
"""
