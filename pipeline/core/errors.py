"""Exception types the CLI turns into one-line messages, and `first_line`, the one line of any error."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message (for a one-line report); its type's name when it has no message."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class LookalikeError(Exception):
    """Base for errors a user can act on; the message says what was wrong and the fix, in the library's terms.

    Attributes:
        setting: the name of the setting (a config field, e.g. "max_pixels") whose value is wrong, if one is; the
            command layer names the option that sets it (`--max-pixels`), the library never does.
    """

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class EncoderSpecError(LookalikeError):
    """An encoder spec string that names no registered encoder or is malformed."""


class WeightsUnavailableError(LookalikeError):
    """Pretrained weights could not be downloaded or read."""


class ImageDecodeError(LookalikeError):
    """An image file that cannot be decoded safely."""


class UnreadableFileError(ImageDecodeError):
    """A path that is not a readable regular file: missing, a broken link, a folder, a FIFO or device, no permission
    (an input image that cannot be read is one that cannot be decoded)."""


class StoreError(LookalikeError):
    """A Qdrant problem: locked store, mismatched collection, unreachable server."""


class EncoderVersionError(StoreError):
    """A collection made by another version of an encoder (same name, different embedding space)."""


class SourceError(LookalikeError):
    """An ingest source (folder or manifest) that cannot be read."""


class DatasetError(LookalikeError):
    """A benchmark dataset root with missing or malformed files."""


class SubmissionError(LookalikeError):
    """A leaderboard submission that does not match the expected format; it is not written."""


class CheckpointError(WeightsUnavailableError):
    """A `siamese@DIR` checkpoint refused on load (incomplete, edited, inconsistent, out of range or a backbone
    cycle); nothing in it was run and nothing sized by it was allocated."""
