{{/* The name of every object: the release's, or "approvalbot" inside it. */}}
{{- define "approvalbot.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* What selects the pods: stable across upgrades. */}}
{{- define "approvalbot.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "approvalbot.labels" -}}
{{ include "approvalbot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "approvalbot.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The replicas, after checking that the store allows them: bolt is a
file one process may open, DynamoDB is shared and wants two for a drain. */}}
{{- define "approvalbot.replicas" -}}
{{- if eq .Values.store.driver "bolt" -}}
1
{{- else -}}
{{- if lt (int .Values.replicaCount) 2 -}}
{{- fail "store.driver dynamodb: replicaCount must be at least 2 (one replica is what bolt is for; the PodDisruptionBudget keeps one serving during drains)" -}}
{{- end -}}
{{- .Values.replicaCount -}}
{{- end -}}
{{- end -}}
