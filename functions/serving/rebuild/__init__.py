"""Loading a rebuild from the archive into the serving table (docs/rebuild.md): an operator's
tool, not part of any Lambda (the sink ships serving/write only, so its role keeps no
DeleteItem)."""
