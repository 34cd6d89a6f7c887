"""MkDocs hooks (mkdocs.yml's `hooks:`): Markdown without emphasis, for the docstrings.

The docstrings write products as `C*H*W` and `2*pad - K`; Markdown would turn `*H*` into
italics and drop the stars. So no text between stars or underscores becomes italic or bold,
on the pages or in the API reference; a page that needs bold writes <strong>.
"""

from markdown import Markdown
from markdown.extensions import Extension
from mkdocs.plugins import event_priority


class NoEmphasis(Extension):
    def extendMarkdown(self, md: Markdown) -> None:
        for name in ("em_strong", "em_strong2"):  # em_strong2: Markdown before 3.11
            if name in md.inlinePatterns:
                md.inlinePatterns.deregister(name)


@event_priority(100)  # before mkdocstrings reads the extensions
def on_config(config):
    config.markdown_extensions.append(NoEmphasis())
    return config
