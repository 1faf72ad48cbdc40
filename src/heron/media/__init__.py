"""The WebRTC ⇄ RTP media bridge the SIP proxy steers, as Kamailio steers rtpengine.

Sans-IO cores: :mod:`~heron.media.sdp` (RFC 8866 parsing with limits),
:mod:`~heron.media.rewrite` (RFC 3264 offer/answer rewriting) and
:mod:`~heron.media.call` (one call's packet path). The I/O is
:mod:`~heron.media.bridge` (sockets) and :mod:`~heron.media.component`.
"""

from heron.media.bridge import Bridge
from heron.media.component import MediaComponent, build_media

__all__ = ["Bridge", "MediaComponent", "build_media"]
