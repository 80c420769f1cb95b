{{/* The chart name, overridable. */}}
{{- define "eks-karpenter-bootstrapper.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The name of every object. */}}
{{- define "eks-karpenter-bootstrapper.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- include "eks-karpenter-bootstrapper.name" . -}}
{{- end -}}
{{- end -}}

{{- define "eks-karpenter-bootstrapper.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eks-karpenter-bootstrapper.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "eks-karpenter-bootstrapper.labels" -}}
{{ include "eks-karpenter-bootstrapper.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: eks-plugin
app.kubernetes.io/part-of: kany8s
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "eks-karpenter-bootstrapper.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "eks-karpenter-bootstrapper.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* registry/repository@digest, else registry/repository:tag (tag defaults to appVersion). */}}
{{- define "eks-karpenter-bootstrapper.image" -}}
{{- $registry := default .Values.image.registry .Values.global.imageRegistry -}}
{{- $repository := .Values.image.repository -}}
{{- if $registry -}}
{{- $repository = printf "%s/%s" $registry $repository -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "eks-karpenter-bootstrapper.imagePullSecrets" -}}
{{- $secrets := concat (.Values.global.imagePullSecrets | default list) (.Values.imagePullSecrets | default list) -}}
{{- if $secrets }}
imagePullSecrets:
{{- range $secrets }}
{{- if kindIs "string" . }}
- name: {{ . }}
{{- else }}
- {{ toYaml . | nindent 2 | trim }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The port of a bind address (":8081" → 8081). */}}
{{- define "eks-karpenter-bootstrapper.port" -}}
{{- regexReplaceAll "^.*:" . "" -}}
{{- end -}}

{{- define "eks-karpenter-bootstrapper.args" -}}
- --leader-elect={{ .Values.args.leaderElect }}
- --metrics-bind-address={{ .Values.args.metricsBindAddress }}
- --metrics-secure={{ .Values.args.metricsSecure }}
- --health-probe-bind-address={{ .Values.args.healthProbeBindAddress }}
- --enable-http2={{ .Values.args.enableHTTP2 }}
{{- with .Values.args.watchNamespace }}
- --watch-namespace={{ . }}
{{- end }}
- --failure-backoff={{ .Values.args.failureBackoff }}
- --steady-state-requeue={{ .Values.args.steadyStateRequeue }}
{{- with .Values.args.karpenterChartVersion }}
- --karpenter-chart-version={{ . }}
{{- end }}
{{- with .Values.aws.endpointUrl }}
- --aws-endpoint-url={{ . }}
{{- end }}
{{- end -}}
