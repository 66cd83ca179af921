"""What a browser shows at a link's or a request's URL (`/l/{id}`, `/r/{id}`) when the web app
is not built (see pli.server.webapp): how to open it with the command line, in English and French.

The page is the same bytes whatever the id: nothing is looked up, nothing is echoed, and it
holds no script and no style, so the API's content security policy (nothing may load) holds.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import Response

router = APIRouter(include_in_schema=False)

_LINK = ("pli link get 'URL'", "a share link", "un lien de partage")
_REQUEST = ("pli request send 'URL' FILE...", "a file request", "une demande de fichiers")


def _page(command: str, what_en: str, what_fr: str) -> bytes:
    code = escape(command, quote=False)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pli</title>
</head>
<body>
<main>
<section lang="en">
<h1>pli: end-to-end encrypted file exchange</h1>
<p>This address is {what_en}. This server does not serve pli's web application: open it
with the pli command line:</p>
<pre><code>{code}</code></pre>
<p>where URL is the whole address you were given, including the part after #.</p>
<p>The part after # is the key: your browser does not send it to this server, and
neither does pli. It never leaves your machine.</p>
</section>
<section lang="fr">
<h1>pli : \u00e9change de fichiers chiffr\u00e9 de bout en bout</h1>
<p>Cette adresse est {what_fr}. Ce serveur ne sert pas l\u2019application web de pli\u00a0:
ouvrez-la avec la ligne de commande pli\u00a0:</p>
<pre><code>{code}</code></pre>
<p>o\u00f9 URL est l\u2019adresse compl\u00e8te que vous avez re\u00e7ue, y compris la
partie apr\u00e8s #.</p>
<p>La partie apr\u00e8s # est la cl\u00e9\u00a0: votre navigateur ne l\u2019envoie pas
\u00e0 ce serveur, et pli non plus. Elle ne quitte jamais votre machine.</p>
</section>
</main>
</body>
</html>
""".encode()


LINK_PAGE = _page(*_LINK)
REQUEST_PAGE = _page(*_REQUEST)
_HTML = "text/html; charset=utf-8"


@router.get("/l/{link_id}")
def link_page(link_id: str) -> Response:
    return Response(LINK_PAGE, media_type=_HTML)


@router.get("/r/{request_id}")
def request_page(request_id: str) -> Response:
    return Response(REQUEST_PAGE, media_type=_HTML)
