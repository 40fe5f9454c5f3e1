from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404

from catalog.models import Image


@login_required
def image_file(request, image_id: int, size: str):
    """Serve an image (placeholder: the original file; thumbnails come with the form)."""
    image = get_object_or_404(Image.objects.select_related("dataset"), pk=image_id)
    if size not in {"thumb", "full"} or image.path is None or not image.path.exists():
        raise Http404("image file missing")
    return FileResponse(open(image.path, "rb"))
