from django.urls import include, path
from rest_framework.routers import SimpleRouter

from glossary import api

router = SimpleRouter()
router.register("domains", api.DomainViewSet, basename="api-domain")
router.register("entries", api.EntryViewSet, basename="api-entry")
router.register("imports", api.ImportViewSet, basename="api-import")

urlpatterns = [
    path("", include(router.urls)),
    path("export/", api.ExportView.as_view(), name="api-export"),
]
