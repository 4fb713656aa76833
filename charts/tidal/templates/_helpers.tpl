{{/*
Chart name, truncated to the 63 characters a label value allows.
*/}}
{{- define "tidal.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the prefix of every resource name. Release "tidal" gives "tidal", not "tidal-tidal".
*/}}
{{- define "tidal.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
chart label value: name-version.
*/}}
{{- define "tidal.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: stable for the life of a release (a Deployment's selector is immutable).
*/}}
{{- define "tidal.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tidal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels on every resource.
*/}}
{{- define "tidal.labels" -}}
helm.sh/chart: {{ include "tidal.chart" . }}
{{ include "tidal.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: tidal
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "tidal.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tidal.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference: repository@digest when a digest is set, else repository:tag (tag defaults
to the appVersion).
*/}}
{{- define "tidal.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
on/off spelling of a boolean, as the operator's flags take it.
*/}}
{{- define "tidal.onOff" -}}
{{- if . }}on{{ else }}off{{ end }}
{{- end }}

{{/*
Refuses value combinations that would deploy something broken. Included by the Deployment.
*/}}
{{- define "tidal.validate" -}}
{{- if and (not .Values.leaderElection.enabled) (gt (int .Values.replicaCount) 1) }}
{{- fail (printf "leaderElection.enabled=false with replicaCount=%d: every replica would write scales and statuses; use replicaCount=1 or enable leader election" (int .Values.replicaCount)) }}
{{- end }}
{{- if and .Values.image.digest (not (hasPrefix "sha256:" .Values.image.digest)) }}
{{- fail (printf "image.digest %q must start with sha256:" .Values.image.digest) }}
{{- end }}
{{- end }}
