from django import forms
from django.utils.translation import gettext_lazy as _

from training.models import TrainingConfig

RETRAIN_OVERRIDES = ("epochs", "max_pairs", "max_steps")


class ConfigChoiceField(forms.ModelChoiceField):
    # One wording for the default configuration, whatever its row is named (issue #17: "par défaut / défaut").
    def label_from_instance(self, obj: TrainingConfig) -> str:
        return str(_("Default configuration")) if obj.is_default else obj.name


class RetrainForm(forms.Form):
    # No empty choice: the default configuration comes first (TrainingConfig.Meta.ordering) and is preselected.
    config = ConfigChoiceField(queryset=TrainingConfig.objects.all(), required=False, label=_("Configuration"), empty_label=None)
    epochs = forms.FloatField(required=False, min_value=0.01, max_value=50, label=_("Epochs"))
    max_pairs = forms.IntegerField(required=False, min_value=1, label=_("Maximum pairs"))
    max_steps = forms.IntegerField(required=False, min_value=1, label=_("Maximum steps"))

    def __init__(self, *args, default_config: TrainingConfig | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if default_config is None:
            return
        # Shown as placeholders, not initial values: an initial value would be sent as an override and would
        # replace the values of another configuration chosen in the list.
        for name in RETRAIN_OVERRIDES:
            value = getattr(default_config, name)
            self.fields[name].widget.attrs["placeholder"] = str(value) if value is not None else str(_("no limit"))
            self.fields[name].help_text = _("Empty: the value of the chosen configuration (default: %(value)s).") % {
                "value": value if value is not None else _("no limit")
            }

    def overrides(self) -> dict:
        return {key: self.cleaned_data.get(key) for key in RETRAIN_OVERRIDES if self.cleaned_data.get(key) is not None}


class TrainingConfigForm(forms.ModelForm):
    class Meta:
        model = TrainingConfig
        exclude = ["is_default", "target_modules"]
