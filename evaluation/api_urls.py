from config.api import OptionalSlashRouter
from evaluation.api import EvaluationRunViewSet, ModelVersionViewSet

router = OptionalSlashRouter()
router.register("model-versions", ModelVersionViewSet, basename="model-version")
router.register("evaluations", EvaluationRunViewSet, basename="evaluation")
urlpatterns = router.urls
