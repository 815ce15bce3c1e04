"""One exception type for mistakes a user can fix; the CLI prints it as a single line."""


class EdgekitError(Exception):
    """A problem with the user's input or environment, reported without a traceback.

    The message must say what was expected and what came in, on one line.
    """

    def one_line(self) -> str:
        text = " ".join(str(self).split())
        cause = self.__cause__
        if cause is not None:
            detail = " ".join(str(cause).split())
            if detail and detail not in text:
                # Keep the original error visible, but short: the first 300 chars carry the op name
                # or file that failed, the rest is usually a stack of C++ frames.
                text = f"{text} ({type(cause).__name__}: {detail[:300]})"
        return text
