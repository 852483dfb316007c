"""The live dashboard page: static HTML, its scripts and one stylesheet, served without a token (the page asks
the user for an analyst token and sends it to the JSON APIs, which keep requiring it)."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from sellthrough_runtime.problems import ProblemError

ASSETS = Path(__file__).parent
MEDIA_TYPES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "money.js": "text/javascript",  # money and number formats (Indian / international grouping)
    "app.css": "text/css",
    "field.html": "text/html",  # the field view (visits, beats, attendance)
    "field.js": "text/javascript",
    "review.html": "text/html",  # the printable review pack (notify/), read with the session's token
    "review.js": "text/javascript",
    "review.css": "text/css",
}
SECURITY_HEADERS = {
    "Cache-Control": "no-cache",
    # Only this origin's own script, stylesheet and APIs; never framed (clickjacking); no MIME sniffing.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(tags=["dashboard"])


@router.get(
    "/dashboard",
    operation_id="dashboard_page",
    response_class=FileResponse,
    responses={200: {"content": {"text/html": {}}}},
)
async def dashboard_page() -> FileResponse:
    """The dashboard itself (index.html)."""
    return FileResponse(ASSETS / "index.html", media_type=MEDIA_TYPES["index.html"], headers=SECURITY_HEADERS)


@router.get(
    "/dashboard/{name}",
    operation_id="dashboard_asset",
    response_class=FileResponse,
    responses={200: {"content": {media_type: {} for media_type in sorted(set(MEDIA_TYPES.values()))}}},
)
async def dashboard_asset(name: str) -> FileResponse:
    """The page's script and stylesheet; nothing else in the folder is served."""
    if name not in MEDIA_TYPES:
        raise ProblemError(404, "not-found", f"No dashboard file '{name}'.")
    return FileResponse(ASSETS / name, media_type=MEDIA_TYPES[name], headers=SECURITY_HEADERS)
