"""The embedded broker (sparkbot_dash/broker.py): every message arrives whole at a reader polling the
folder while it is written. (kombu's own channel could hand a reader an empty, just-created
file; the window is microseconds, so no test here can make it happen on demand.)"""

import threading
from queue import Empty

from kombu import Connection

from sparkbot_dash.broker import AtomicFilesystemTransport


def channel(folder):
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder),
               "control_folder": str(folder / "control"), "store_processed": False}
    (folder / "control").mkdir(exist_ok=True)
    return Connection(transport=AtomicFilesystemTransport, transport_options=options).default_channel


def test_it_delivers_every_message_whole_to_a_reader_polling_meanwhile(tmp_path):
    writer, reader = channel(tmp_path), channel(tmp_path)
    payload = {"body": "x" * 200_000}  # big enough to take several writes
    received, errors = [], []

    def read():
        while len(received) < 200:
            try:
                received.append(reader._get("celery"))
            except Empty:
                continue
            except Exception as error:  # a torn message would show here as a JSON error
                errors.append(error)
                break

    thread = threading.Thread(target=read)
    thread.start()
    for _ in range(200):
        writer._put("celery", payload)
    thread.join(30)
    assert errors == []
    assert len(received) == 200 and all(message == payload for message in received)
