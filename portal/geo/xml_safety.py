"""Refuse XML files (KML, GML) that declare a DOCTYPE or entities, before GDAL parses them.

A DOCTYPE is how external entities (XXE: reading server files, fetching URLs) and entity
expansion bombs get in. KML and GML never need one, so any declaration is refused.
"""

import codecs
import re
from pathlib import Path
from xml.parsers import expat

from portal.core.errors import LoadFailed

CHUNK = 64 * 1024
_DECLARED = re.compile(rb"""^<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


class _Refused(Exception):
    """A declaration was found."""


class _RootReached(Exception):
    """The root element started: no DOCTYPE can follow."""


def check_xml_safe(path: Path) -> None:
    """Raise `LoadFailed` if the file declares a DOCTYPE or an entity, or is not XML."""
    with path.open("rb") as handle:
        head = handle.read(CHUNK)
        codec = _codec(head)
        decoder = codecs.getincrementaldecoder(codec)(errors="strict")
        # Expat knows few encodings (not Shift_JIS): decode here and give it UTF-8.
        parser = expat.ParserCreate(encoding="UTF-8")
        parser.StartDoctypeDeclHandler = _refuse
        parser.EntityDeclHandler = _refuse
        parser.StartElementHandler = _root_reached
        chunk = head
        try:
            while True:
                final = len(chunk) < CHUNK
                parser.Parse(decoder.decode(chunk, final=final).encode("utf-8"), final)
                if final:
                    return
                chunk = handle.read(CHUNK)
        except _RootReached:
            return
        except _Refused:
            raise LoadFailed(
                f"{path.name}: the file declares a DOCTYPE or entities (<!DOCTYPE>, <!ENTITY>), "
                "which can make the server read other files; it was not opened. Export the "
                "KML again from the GIS, or delete the <!DOCTYPE …> part"
            ) from None
        except (UnicodeDecodeError, LookupError) as exc:
            raise LoadFailed(f"{path.name}: the text is not valid {codec} ({exc})") from exc
        except expat.ExpatError as exc:
            raise LoadFailed(
                f"{path.name}: not well-formed XML (line {exc.lineno}: "
                f"{expat.ErrorString(exc.code)})"
            ) from exc


def _codec(head: bytes) -> str:
    """The Python codec of an XML file: its BOM, its declaration, or UTF-8."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    body = head.removeprefix(codecs.BOM_UTF8)
    declared = _DECLARED.match(body)
    if not declared:
        return "utf-8-sig"
    name = declared.group(1).decode("ascii").lower().replace("-", "_")
    # Files that say Shift_JIS are CP932 in practice (①, №, NEC specials).
    return "cp932" if name in {"shift_jis", "sjis", "x_sjis", "windows_31j"} else name


def _refuse(*_: object) -> None:
    raise _Refused


def _root_reached(*_: object) -> None:
    raise _RootReached
