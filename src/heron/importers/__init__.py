"""``heron import``: accounts and their data from coturn, Kamailio and Prosody.

Each reader turns one source (coturn's ``turndb``, Kamailio's ``subscriber`` table,
Prosody's data directory) into :class:`Extracted` records, deciding which heron
account each becomes under the configured names and realms, and saying why it
skips what cannot work in heron. :func:`apply` writes them through the account
service, adding what is missing and nothing else, so a re-run changes nothing.
Sources are read, never run: Prosody's Lua data files go through a literal-only
parser (:mod:`heron.importers.lua`).
"""

from heron.importers.apply import Report, apply, derivations
from heron.importers.coturn import read_coturn
from heron.importers.kamailio import read_kamailio
from heron.importers.model import Extracted, ImportedAccount, Skipped, SourceError
from heron.importers.prosody import read_prosody
from heron.importers.tables import Source, shown

__all__ = [
    "Extracted",
    "ImportedAccount",
    "Report",
    "Skipped",
    "Source",
    "SourceError",
    "apply",
    "derivations",
    "read_coturn",
    "read_kamailio",
    "read_prosody",
    "shown",
]
