from django import forms
from django.utils.translation import gettext_lazy as _

from training.models import TrainingConfig


class RetrainForm(forms.Form):
    config = forms.ModelChoiceField(queryset=TrainingConfig.objects.all(), required=False, label=_("Configuration"), empty_label=_("par défaut"))
    epochs = forms.FloatField(required=False, min_value=0.01, max_value=50, label=_("Époques"))
    max_pairs = forms.IntegerField(required=False, min_value=1, label=_("Paires au plus"))
    max_steps = forms.IntegerField(required=False, min_value=1, label=_("Étapes au plus"))

    def overrides(self) -> dict:
        return {key: self.cleaned_data.get(key) for key in ("epochs", "max_pairs", "max_steps") if self.cleaned_data.get(key) is not None}


class TrainingConfigForm(forms.ModelForm):
    class Meta:
        model = TrainingConfig
        exclude = ["is_default", "target_modules"]
