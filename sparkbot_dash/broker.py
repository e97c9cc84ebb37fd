"""Celery's filesystem broker (the embedded default), writing each message atomically.

kombu's own filesystem channel writes a message straight into the folder its readers
list, so a worker polling at that moment can take a half-written file and die on it.
Here the message is written under a name readers ignore and then renamed into place.
"""

import os
import uuid
from time import monotonic

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class AtomicChannel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = f"{final}.part"  # "<queue>.msg.part" does not match what readers look for
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as error:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from error


class AtomicFilesystemTransport(filesystem.Transport):
    Channel = AtomicChannel

    @property
    def default_connection_params(self):
        """None: the broker is folders, not a host. kombu's default names one, then warns in each process
        ("No hostname was supplied") that the URL gave none."""
        return {}
