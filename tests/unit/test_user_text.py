"""Text people type is shown as typed (issue 11, item 8): :func:`core.text.plain` escapes it for
Streamlit Markdown, and :func:`core.text.check_length` holds it to data/input_limits.yaml.

How the escaping is checked: CommonMark lets a backslash escape any ASCII punctuation character,
and every piece of Markdown syntax (links, images, headings, lists, emphasis, code, tables, HTML,
maths, Streamlit's ``:color[…]`` directives) starts or ends with such a character. So the output
must contain no ASCII punctuation that is not escaped, and reading the escapes back must give the
text as typed. Streamlit turns ``:material_x:``/emoji shortcodes into icons *after* parsing (when
the escapes are gone), so the text read back must not hold such a pattern either.
"""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InputError
from core.text import check_length, input_limits, plain

PUNCT = set(string.punctuation)
ZWSP, NBSP = "\u200b", "\u00a0"
# what Streamlit's frontend rewrites in the text it has parsed (StreamlitMarkdown: remark-directive,
# the :material_…: icon replacement, remark-emoji)
ICON = re.compile(r":material_\w+:")
SHORTCODE = re.compile(r":[\w+-]+:")
# GFM autolink literals, which mdast-util-gfm-autolink-literal finds in parsed text (escapes gone)
AUTOLINK_URL = re.compile(r"(https?://|www(?=\.))([-.\w]+)", re.I)
AUTOLINK_EMAIL = re.compile(r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)")


def read_back(markdown: str) -> str:
    """The text a CommonMark parser makes of ``markdown``'s escapes; fails on an unescaped ASCII
    punctuation character (one that could open or close Markdown syntax)."""
    out, i = [], 0
    while i < len(markdown):
        ch = markdown[i]
        if ch == "\\" and i + 1 < len(markdown) and markdown[i + 1] in PUNCT:
            out.append(markdown[i + 1])
            i += 2
            continue
        assert ch not in PUNCT, f"unescaped {ch!r} at {i} in {markdown!r}"
        out.append(ch)
        i += 1
    return "".join(out)


def shown(typed: str) -> str:
    """What a reader sees of ``typed``: line breaks as \\n, the zero-width spaces dropped."""
    return read_back(plain(typed)).replace("  \n", "\n").replace(ZWSP, "")


@pytest.mark.parametrize(("typed", "escaped"), [
    ("[click](http://evil)", r"\[click\]\(http\:" + ZWSP + r"\/\/evil\)"),                  # link
    ("![x](http://evil/x.png)", r"\!\[x\]\(http\:" + ZWSP + r"\/\/evil\/x\.png\)"),         # remote image
    ("# Heading", r"\# Heading"),                                                  # heading
    ('<img src=x onerror="alert(1)">', r"\<img src\=x onerror\=\"alert\(1\)\"\>"),  # HTML
    ("**bold** _it_", r"\*\*bold\*\* \_it\_"),                                     # emphasis
    (":red[alarm] :blue-background[x]", r"\:red\[alarm\] \:blue\-background\[x\]"),  # colour directives
    ("$x^2$", r"\$x\^2\$"),                                                        # maths
    ("1. one", r"1\. one"),                                                        # ordered list
    ("下周开始训练，预计 3 天", "下周开始训练，预计 3 天"),                              # Chinese text as is
])
def test_markdown_syntax_is_escaped(typed, escaped):
    assert plain(typed) == escaped
    assert shown(typed) == typed


@pytest.mark.parametrize("typed", [":material/home:", ":material_home:", ":smile:", ":streamlit:", "a :+1: b"])
def test_icon_and_emoji_shortcodes_do_not_render(typed):
    out = plain(typed)
    assert ":material/" not in out                 # Streamlit rewrites this in the source before parsing
    text = read_back(out)
    assert not ICON.search(text) and not SHORTCODE.search(text), text
    assert shown(typed) == typed


@pytest.mark.parametrize("typed", ["see www.evil.com", "http://evil.com/x.png", "HTTPS://EVIL.COM", "mail a@b.com",
                                   "mailto:a@b.com"])
def test_bare_urls_and_addresses_are_not_linked(typed):
    text = read_back(plain(typed))
    assert not AUTOLINK_URL.search(text) and not AUTOLINK_EMAIL.search(text), text
    assert shown(typed) == typed


def test_line_breaks_and_indentation_are_kept_without_making_a_code_block():
    out = plain("first\r\n    second\n\n- third")
    assert out == "first  \n" + NBSP * 4 + "second  \n  \n\\- third"
    assert shown("first\n    second\n\n- third") == "first\n" + NBSP * 4 + "second\n\n- third"


def test_none_is_empty():
    assert plain(None) == ""


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200))
def test_any_text_reads_back_as_typed_with_no_unescaped_punctuation(typed):
    expected = typed.replace("\r\n", "\n").replace("\r", "\n")
    lines = [ln.replace(ZWSP, "") for ln in expected.split("\n")]
    indent = [len(ln) - len(ln.lstrip(" \t")) + 3 * ln[:len(ln) - len(ln.lstrip(" \t"))].count("\t") for ln in lines]
    assert shown(typed).split("\n") == [NBSP * n + ln.lstrip(" \t") for n, ln in zip(indent, lines)]


def test_the_limits_come_from_the_data_file_and_name_the_field():
    limits = input_limits()
    assert set(limits) == {"reason", "reply", "note", "background"} and all(v > 0 for v in limits.values())
    assert check_length("x" * limits["reply"], field="reply", kind="reply") == "x" * limits["reply"]
    with pytest.raises(InputError) as err:
        check_length("x" * (limits["reply"] + 1), field="reply", kind="reply")
    assert err.value.field == "reply" and err.value.key == "input.too_long"
    assert err.value.params["limit"] == limits["reply"] and err.value.params["length"] == limits["reply"] + 1
