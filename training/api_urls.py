from config.api import OptionalSlashRouter
from training.api import NegativeCandidateViewSet, TrainingRunViewSet
from training.workbench_api import ReviewDecisionViewSet, ReviewItemViewSet

router = OptionalSlashRouter()
router.register("training-runs", TrainingRunViewSet, basename="training-run")
router.register("negative-candidates", NegativeCandidateViewSet, basename="negative-candidate")
router.register("review-items", ReviewItemViewSet, basename="review-item")
router.register("review-decisions", ReviewDecisionViewSet, basename="review-decision")
urlpatterns = router.urls
