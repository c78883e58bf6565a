#!/bin/sh
cat /greeting.txt
echo "built by ${OPENSHIFT_BUILD_NAME} in ${OPENSHIFT_BUILD_NAMESPACE}"
