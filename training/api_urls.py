from config.api import OptionalSlashRouter
from training.api import NegativeCandidateViewSet, TrainingRunViewSet

router = OptionalSlashRouter()
router.register("training-runs", TrainingRunViewSet, basename="training-run")
router.register("negative-candidates", NegativeCandidateViewSet, basename="negative-candidate")
urlpatterns = router.urls
