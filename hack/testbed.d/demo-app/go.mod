module gitops-drill.testbed/demo-app

go 1.24
